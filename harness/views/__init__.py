"""Views rebuilt from the run store: Markdown reports and plots, MLflow, pandas."""
