"""The OpenAI client, built once per configuration and shared by every session (st.cache_resource)."""

from __future__ import annotations

import streamlit as st

from coaching.llm import make_client
from coaching.settings import get_settings


@st.cache_resource(show_spinner=False)
def _client(api_key: str, base_url: str, timeout: float, retries: int):
    # The arguments are the cache key: a changed key, endpoint or timeout builds a new client.
    return make_client(get_settings())


def get_client():
    """The configured client, or None when no OPENAI_API_KEY is set (briefs are then offline)."""
    s = get_settings()
    return _client(s.openai_api_key, s.openai_base_url, s.llm_timeout_s, s.llm_max_retries)
