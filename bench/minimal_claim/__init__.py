"""The reference claims of issue 14: a FastAPI + raw asyncpg app with one endpoint
(``app.py``) and the databases it runs on (``schema.py``). ``bench/claims.py
--reference`` runs it beside the service and prints the ratios; nothing here is part
of the product."""
