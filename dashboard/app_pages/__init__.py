"""One module per dashboard page, listed by `dashboard/streamlit_app.py`."""
