"""Pure functions over a model and an input that return arrays: hooks, features, attribution,
attention, neurons, evaluation. Nothing here imports Streamlit."""
