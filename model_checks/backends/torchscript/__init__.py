"""TorchScript archives (`.pt`/`.pth`): loader, runner, inspect. torch is imported only inside them."""
