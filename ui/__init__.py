"""Streamlit-side helpers shared by app.py and the pages: navigation, guard, start-up, auth."""
