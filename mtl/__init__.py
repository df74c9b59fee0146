"""Multi-task text classification with a shared pretrained encoder (the course unit's question 3)."""
