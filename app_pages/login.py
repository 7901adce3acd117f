"""Sign-in page (shown alone when nobody is signed in)."""

from ui.auth import render_login

render_login()
