"""Sign-in page (shown alone when nobody is signed in); on an empty install, the first-admin setup."""

from ui.auth import render_login

render_login()
