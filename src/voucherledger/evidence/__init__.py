"""Evidence files: the documents (PDF, JPEG, PNG) a supplier uploads to back its claims."""
