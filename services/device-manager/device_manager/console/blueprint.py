"""The console's parent blueprint: who is signed in, role checks, and errors shown as pages or htmx messages."""

from __future__ import annotations

import logging
from functools import wraps

from flask import Blueprint, abort, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError

from device_manager.console import data
from device_manager.http_status import status_of
from device_manager.service import errors as domain
from device_manager.service.roles import Role, allows

log = logging.getLogger("device_manager.console")


def build() -> Blueprint:
    """A fresh parent blueprint per app (hooks cannot be added to one that an app has registered)."""
    bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
                   static_folder="static", static_url_path="/static")
    bp.before_request(_load_user)
    bp.after_request(_no_store)
    bp.register_error_handler(domain.DomainError, _domain_error)
    bp.register_error_handler(domain.Unavailable, _unavailable)
    bp.register_error_handler(CSRFError, _csrf_error)
    bp.register_error_handler(403, _forbidden)
    bp.context_processor(lambda: {"can": can, "user": g.get("user")})
    return bp


def _load_user() -> None:
    """g.user from the session, checked every request: a signed-out session, a disabled user, a changed role or
    password ends it at once."""
    g.user = None
    uid, sid, role = session.get("uid"), session.get("sid"), session.get("role")
    if uid and sid and role:
        if data.session_valid(sid, uid, role, session.get("pwv", 0)):
            g.user = {"id": uid, "email": session.get("email"), "role": role}
        else:
            session.clear()


def _no_store(response):
    if request.endpoint != "console.static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def can(minimum: str) -> bool:
    """Whether the signed-in user has at least this role (templates hide controls with it)."""
    return g.get("user") is not None and allows(g.user["role"], Role(minimum))


def requires(minimum: Role):
    """Only signed-in users with at least `minimum` reach the view: sign-in page if anonymous, 403 if too low."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if g.get("user") is None:
                target = url_for("console.session.sign_in", next=request.full_path if request.method == "GET"
                                 else None)
                if is_htmx():
                    return "", 401, {"HX-Redirect": target}
                return redirect(target)
            if not allows(g.user["role"], minimum):
                abort(403, description=f"This needs the {minimum.value} role")
            return view(*args, **kwargs)

        return wrapper

    return decorator


def actor() -> str:
    """Who did it, as the API records it: the user's email."""
    return g.user["email"]


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def notify(message: str, category: str = "ok") -> str:
    """An out-of-band toast for htmx responses."""
    return render_template("console/_toast.html", message=message, category=category, oob=True)


def _fail(message: str, status: int, details=None):
    log.info("console action refused", extra={"status": status, "path": request.path, "reason": message})
    if is_htmx():
        return render_template("console/_toast.html", message=message, category="error", details=details,
                               oob=False), status
    return render_template("console/error.html", message=message, details=details, status=status), status


def _domain_error(exc: domain.DomainError):
    status = status_of(exc)[0]  # as the JSON API maps it
    return _fail(exc.message, status, exc.details)


def _unavailable(exc: domain.Unavailable):
    return _fail(f"Temporarily unavailable: {exc}", 503)


def _csrf_error(exc: CSRFError):
    return _fail(f"Refused: {exc.description} Reload the page and try again.", 400)


def _forbidden(exc):
    return _fail(exc.description or "Forbidden", 403)
