"""The batching engine under every prediction: tokenized rows to logits, length-sorted, in input order.

``logits`` (``predict_logits``, ``forward_rows``, ``length_batches``); the task families build on it.
"""
