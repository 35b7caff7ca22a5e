"""Watching runs: the live terminal view, learning-curve plots, TensorBoard export, the notebook
panel and the MLflow UI."""
