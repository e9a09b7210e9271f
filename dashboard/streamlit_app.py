"""The dashboard's frame: page navigation. Run with `streamlit run dashboard/streamlit_app.py` (`retail up`
does, on RETAIL_DASHBOARD_PORT). It reads marts, ml and ops as the read-only analyst login only.
"""

from __future__ import annotations

import streamlit as st

PAGES = [
    st.Page("app_pages/overview.py", title="Overview", icon=":material/monitoring:", default=True),
    st.Page("app_pages/sales.py", title="Sales", icon=":material/shopping_cart:"),
    st.Page("app_pages/refunds.py", title="Refunds", icon=":material/undo:"),
    st.Page("app_pages/stores.py", title="Stores", icon=":material/storefront:"),
    st.Page("app_pages/customers.py", title="Customers", icon=":material/groups:"),
    st.Page("app_pages/recommendations.py", title="Recommendations", icon=":material/recommend:"),
    st.Page("app_pages/pipeline_health.py", title="Pipeline health", icon=":material/health_and_safety:"),
]

st.set_page_config(page_title="Retail analytics", page_icon=":material/store:", layout="wide")
st.navigation(PAGES).run()
