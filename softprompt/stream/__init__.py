"""Prediction at scale for ``softprompt predict --input``: tables streamed in chunks, resumable, shared over ranks.

``input`` (reading a table of any size in chunks), ``chunk_log`` (what is written and where a run
resumes), ``predict`` (the loop, given a predict function). Knows nothing of models or tasks.
"""
