"""Generation: the per-document session, requests, the job queue, results.

``session`` (what the user chose, one per document) -> ``request`` (a frozen engine request built
from the document, pure) -> ``jobs`` (the queue: one worker thread, events with job ids) ->
``results`` (variants -> RESULT layers, previews -> pixels). Nothing here imports QtWidgets.
"""
