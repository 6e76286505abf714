"""Fine-tuning LoRA adapters on the user's own data (peft + TRL), in a process of its own.

The shared types live in ``webui.training.types``; docs/training.md is the user's guide.
"""
