"""The local QLoRA backend (torch is imported only inside the trainer process)."""
