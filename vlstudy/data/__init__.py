"""Records, feature stores, tokenizer, answers and batching: shared by the synthetic and real data."""
