"""Placeholder while the page is being built (replaced before landing)."""
import streamlit as st

st.title("predict")
st.info("This page is being built.")
