"""Registration with live field validation, its key confirmation, and account activation
(SPEC A1, A2, A8). Form errors answer 200, as in every electro.web.forms page."""

from __future__ import annotations

from datetime import timedelta

from quart import Blueprint, Response, request, session
from quart_rate_limiter import rate_limit

from electro.errors import Conflict, InvalidInput, NotFound
from electro.services import keys, newsletters, registration
from electro.services.registration import FIELDS
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

bp = Blueprint("register", __name__)

VALIDATE = rate_limit(60, timedelta(minutes=1))
# The pending registration this browser submitted: wrong keys typed here are charged to it.
PENDING = "pending_reg"

REGISTER_KEY = FormPage("Confirm your registration",
                        "Enter the key from the e-mail we sent you; the account is created "
                        "then.", "/register/confirm", "Create my account")
ACTIVATE_KEY = FormPage("Activate your account", "Enter the key from the activation e-mail.",
                        "/activate/confirm", "Activate my account")
ACTIVATE_EMAIL = FormPage("Activate your account",
                          "Enter your account's e-mail address; we send it an activation key.",
                          "/activate", "Send the key")


def _echo(form: dict[str, str]) -> dict[str, str]:
    """What the re-rendered form shows again: never the passwords."""
    return {"username": form.get("username", ""), "email": form.get("email", ""),
            "newsletter": form.get("newsletter", "")}


@bp.get("/register")
async def register_page() -> Response:
    return await render("register.html", "partials/register_form.html", form={}, errors={})


@bp.post("/register")
@SUBMIT
async def register() -> Response:
    form = await form_values(*FIELDS, "newsletter")
    rt = runtime()
    try:
        pending_id = await registration.start(
            db(), rt.settings, rt.passwords, form, origin(), replaces=session.get(PENDING),
            newsletter=newsletters.consents(form["newsletter"]))
    except InvalidInput as exc:
        return await render("register.html", "partials/register_form.html", form=_echo(form),
                            errors=exc.errors)
    session[PENDING] = pending_id
    # The same words whether or not the address has an account (A1: no enumeration).
    return await notice(
        "Check your mail",
        "We sent a message to the address you gave. Enter the key it contains within "
        f"{minutes()} to create your account.",
        "/register/confirm", "Enter the key",
    )


@bp.post("/register/validate/<field>")
@VALIDATE
async def validate(field: str) -> Response:
    """One field's error element for htmx (the whole form page without htmx)."""
    if field not in FIELDS:
        raise NotFound("There is no such field.")
    form = await form_values(*FIELDS)
    message = await registration.field_problem(db(), runtime().settings, field, form,
                                               session.get(PENDING))
    return await render("register.html", "partials/field_error.html", field=field,
                        message=message, form=_echo(form), errors={field: message})


@bp.get("/register/confirm")
async def register_confirm_page() -> Response:
    # Only a form: link scanners prefetch GETs, so a GET never creates the account.
    return await key_page(REGISTER_KEY, request.args.get("key", ""))


@bp.post("/register/confirm")
@SUBMIT
async def register_confirm() -> Response:
    key = (await form_values("key"))["key"].strip()
    try:
        user = await registration.confirm(db(), runtime().settings, key, session.get(PENDING),
                                          origin())
    except keys.KeyRefused as refused:
        if refused.ended:
            session.pop(PENDING, None)
            return await notice("Registration ended",
                                "Too many wrong keys: this registration has ended. Please "
                                "register again.", "/register", "Register again")
        return await key_page(REGISTER_KEY, message=key_refused())
    except Conflict as exc:
        session.pop(PENDING, None)
        return await notice("Registration not finished", exc.message, "/register",
                            "Register again")
    session.pop(PENDING, None)
    # Not signed in automatically: the key proves the mailbox, the password proves the person.
    return await notice("Your account is ready",
                        f"Welcome, {user.username}. Log in with your username or e-mail "
                        "address and your password.", "/login", "Log in")


@bp.get("/activate")
async def activate_page() -> Response:
    return await address_page(ACTIVATE_EMAIL)


@bp.post("/activate")
@SUBMIT
async def activate_request() -> Response:
    email = (await form_values("email"))["email"]
    try:
        await registration.request_activation(db(), runtime().settings, email, origin())
    except InvalidInput as exc:
        return await address_page(ACTIVATE_EMAIL, email, exc.errors["email"])
    return await notice("Check your mail",
                        "If an inactive account uses this address, we sent it an activation "
                        f"key, valid for {minutes()}.", "/activate/confirm", "Enter the key")


@bp.get("/activate/confirm")
async def activate_confirm_page() -> Response:
    return await key_page(ACTIVATE_KEY, request.args.get("key", ""))


@bp.post("/activate/confirm")
@SUBMIT
async def activate_confirm() -> Response:
    key = (await form_values("key"))["key"].strip()
    try:
        await registration.activate(db(), runtime().settings, key, origin())
    except keys.KeyRefused:
        return await key_page(ACTIVATE_KEY, message=key_refused())
    return await notice("Your account is active", "You can log in now.", "/login", "Log in")
