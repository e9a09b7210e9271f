"""Recommendations: the latest run's association rules (support, confidence, lift), and "customers who
bought these also buy" for a chosen product or basket (ml.also_bought)."""

from __future__ import annotations

import streamlit as st

from dashboard import queries
from dashboard.components import panel
from dashboard.tables import table

NO_RULES = "No association-rules run yet: build the marts (`retail dbt build`), then run `retail ml run`."


@panel
def rules() -> None:
    top = queries.top_rules()
    if top.empty:
        st.info(NO_RULES, icon=":material/info:")
        return
    st.subheader("Top rules")
    table(top)


@panel
def lookup() -> None:
    st.subheader("Bought X → also buy")
    products = queries.current_products()
    names = dict(zip(products["product_id"], products["product_name"], strict=True))
    basket = st.multiselect(
        "Product or basket",
        options=list(names),
        format_func=lambda product_id: f"{names[product_id]} ({product_id})",
        key="basket",
        placeholder="Choose one or more products",
    )
    if not basket:
        st.caption("Choose products to see what customers who bought them also buy.")
        return
    suggestions = queries.also_bought(tuple(sorted(basket)))
    if suggestions.empty:
        st.info("No rule starts from this basket in the latest run.")
        return
    table(suggestions)


st.title("Recommendations")
rules()
lookup()
