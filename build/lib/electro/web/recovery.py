"""Password reset (SPEC A6) and e-mail change (A11). Form errors answer 200, as in every
electro.web.forms page."""

from __future__ import annotations

from quart import Blueprint, Response, redirect, request, session

from electro.errors import Conflict, InvalidInput
from electro.security.keys import hash_key
from electro.services import keys, recovery
from electro.web import db, origin, render, runtime
from electro.web.forms import (
    SUBMIT,
    FormPage,
    address_page,
    form_values,
    key_page,
    key_refused,
    minutes,
    notice,
)
from electro.web.guards import login_required, signed_in

bp = Blueprint("recovery", __name__)

# The reset key's hash, moved out of the URL into the (signed, HttpOnly) session cookie on the
# first GET, so the key never leaks through Referer, history or logs of later requests.
RESET = "reset_key_hash"
EMAIL_KEY = FormPage("Confirm your new e-mail address",
                    "Enter the key we sent to the new address.", "/account/email/confirm",
                    "Change my address")


RESET_EMAIL = FormPage("Reset your password",
                       "Enter your account's e-mail address; we send it a link to choose a new "
                       "password.", "/password/reset", "Send the link")


async def _link_expired() -> Response:
    session.pop(RESET, None)
    return await notice("This link does not work",
                        f"Reset links work once, for {minutes()}. Ask for a new one.",
                        "/password/reset", "Reset the password again")


@bp.get("/password/reset")
async def reset_page() -> Response:
    return await address_page(RESET_EMAIL)


@bp.post("/password/reset")
@SUBMIT
async def reset_request() -> Response:
    email = (await form_values("email"))["email"]
    try:
        await recovery.request_reset(db(), runtime().settings, email, origin())
    except InvalidInput as exc:
        return await address_page(RESET_EMAIL, email, exc.errors["email"])
    # The same words for every address (A6: no enumeration).
    return await notice("Check your mail",
                        "If an account uses this address, we sent it a link to choose a new "
                        f"password. The link works once, for {minutes()}.")


@bp.get("/password/reset/<key>")
@SUBMIT
async def reset_link(key: str) -> Response:
    session[RESET] = hash_key(key)
    return redirect("/password/reset/new", 303)  # type: ignore[return-value]


@bp.get("/password/reset/new")
async def reset_password_page() -> Response:
    key_hash = session.get(RESET)
    user = await recovery.reset_account(db(), runtime().settings, key_hash) if key_hash else None
    if user is None:
        return await _link_expired()
    return await render("password_reset.html", "partials/password_form.html",
                        username=user.username, errors={})


@bp.post("/password/reset/new")
@SUBMIT
async def reset_password() -> Response:
    form = await form_values("password", "password_confirm")
    key_hash = session.get(RESET, "")
    rt = runtime()
    try:
        user = await recovery.reset_password(db(), rt.settings, rt.passwords, key_hash,
                                             form["password"], form["password_confirm"],
                                             origin())
    except keys.KeyRefused:
        return await _link_expired()
    except InvalidInput as exc:
        account = await recovery.reset_account(db(), rt.settings, key_hash)
        return await render("password_reset.html", "partials/password_form.html",
                            username=account.username if account else "", errors=exc.errors)
    session.pop(RESET, None)
    return await notice("Your password is changed",
                        f"Every session of {user.username} was signed out. Log in with the new "
                        "password.", "/login", "Log in")


async def _email_form(email: str = "", errors: dict[str, str] | None = None) -> Response:
    return await render("account_email.html", "partials/email_change_form.html",
                        current_email=(await signed_in()).user.email, email=email,
                        errors=errors or {})


@bp.get("/account/email")
@login_required
async def email_page() -> Response:
    return await _email_form()


@bp.post("/account/email")
@SUBMIT
@login_required
async def email_request() -> Response:
    form = await form_values("email", "current_password")
    rt = runtime()
    try:
        await recovery.request_email_change(db(), rt.settings, rt.passwords,
                                            (await signed_in()).user, form["email"],
                                            form["current_password"], origin())
    except InvalidInput as exc:
        return await _email_form(form["email"], exc.errors)
    return await notice("Check the new mailbox",
                        "We sent a message to the new address. Enter the key it contains "
                        f"within {minutes()}; until then your address stays as it is.",
                        "/account/email/confirm", "Enter the key")


@bp.get("/account/email/confirm")
@login_required
async def email_confirm_page() -> Response:
    return await key_page(EMAIL_KEY, request.args.get("key", ""))


@bp.post("/account/email/confirm")
@SUBMIT
@login_required
async def email_confirm() -> Response:
    key = (await form_values("key"))["key"].strip()
    try:
        new_email = await recovery.change_email(db(), runtime().settings,
                                                (await signed_in()).user, key, origin())
    except keys.KeyRefused as refused:
        if refused.ended:
            return await notice("E-mail change ended",
                                "Too many wrong keys: ask for the change again.",
                                "/account/email", "Change the address")
        return await key_page(EMAIL_KEY, message=key_refused())
    except Conflict as exc:
        return await notice("Address not changed", exc.message, "/account/email",
                            "Choose another address")
    return await notice("Your e-mail address is changed",
                        f"Your account now uses {new_email}.", "/account", "Your account")
