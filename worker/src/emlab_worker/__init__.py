"""emlab's HF worker: a transformers model behind the HTTP protocol of docs/worker-protocol.md."""

__version__ = "0.1.0"
