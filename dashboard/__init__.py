"""The Streamlit dashboard: `streamlit run dashboard/streamlit_app.py` (started by `retail up`)."""
