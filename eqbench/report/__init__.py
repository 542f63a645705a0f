"""Reports rendered from results.json alone: text/markdown/csv tables, HTML, plots."""
