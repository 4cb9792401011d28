"""Sign in and out: the same users, passwords and login rate limit as POST /api/v1/auth/login."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for

from device_manager.console import data
from device_manager.extensions import limiter

bp = Blueprint("session", __name__)


def _limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _key() -> str:
    # The email as sign_in_post checks it, so spacing or case variants share one budget.
    return f"console|{request.form.get('email', '').strip().lower()}|{request.remote_addr}"


@bp.route("/sign-in", methods=["GET"])
def sign_in():
    """The sign-in form."""
    if g.user is not None:
        return redirect(url_for("console.overview.index"))
    return render_template("console/sign_in.html", next=_next())


@bp.route("/sign-in", methods=["POST"])
@limiter.limit(_limit, key_func=_key)
def sign_in_post():
    """Check the password; a new session (fresh CSRF token) on success."""
    found = data.sign_in(request.form.get("email", "").strip(), request.form.get("password", ""))
    if found is None:
        return render_template("console/sign_in.html", next=_next(), error="Invalid email or password"), 401
    session.clear()
    session.permanent = True
    session.update(uid=str(found["id"]), sid=str(uuid.uuid4()), email=found["email"], role=found["role"],
                   pwv=found["password_version"])
    return redirect(_next() or url_for("console.overview.index"), 303)


@bp.route("/sign-out", methods=["POST"])
def sign_out():
    """End the session: revoked server-side too, so a copied cookie stops working."""
    if session.get("sid"):
        data.end_session(session["sid"], datetime.now(UTC) + current_app.permanent_session_lifetime)
    session.clear()
    flash("Signed out", "ok")
    return redirect(url_for("console.session.sign_in"), 303)


def _next() -> str | None:
    """Where to go after signing in: only a path inside the console (never another site)."""
    target = request.values.get("next") or ""
    return target if target.startswith("/console/") and not target.startswith("//") else None
