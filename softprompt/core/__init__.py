"""What every layer agrees on: the task, the prompt config, prediction types, constants, the wrapper protocol.

``task`` (``Task``, ``TaskType``), ``config`` (``SoftPromptConfig``), ``predictions`` (result types and
``decode``), ``constants`` (file names, ``IGNORE_INDEX``, default lengths), ``protocols``
(``PromptedModel``), ``auto_model`` (``AutoModelForTextToLabel``). Imports only ``softprompt.utils``.
"""
