from fakes.fixtures import (  # noqa: F401
    fake_sendgrid,
    fake_twilio,
    make_dispatcher,
    renderer,
    shop,
)
