"""Pure figure builders: arrays (and plain values) in, a plotly Figure (or HTML, a table) out.

No st.* call anywhere in this package: pages cache what they build through ui.cache and show it
with st.plotly_chart. One module per view; the look comes from ui.style.
"""
