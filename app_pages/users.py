"""Placeholder page: filled in by its issue."""

import streamlit as st

from ui.guard import guard

user = guard(__file__)
st.title("users".replace("_", " ").capitalize())
st.info("Coming soon.")
