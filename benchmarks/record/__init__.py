"""The real-data benchmark's parts, one job each (``benchmarks/real_data.py`` runs them): ``settings``, ``data``,
``store`` (the record), ``stats`` (paired figures), ``tables`` (its Markdown)."""
