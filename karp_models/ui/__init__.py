"""The only part of karp_models that imports streamlit: cached loaders, widgets, figure builders."""
