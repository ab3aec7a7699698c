"""Placeholder while the page is being built (replaced before landing)."""
import streamlit as st

st.title("rnn_neurons")
st.info("This page is being built.")
