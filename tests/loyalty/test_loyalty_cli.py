from click.testing import CliRunner

from postpurchase.cli import main
from postpurchase.loyalty.ledger import balance
from postpurchase.store.database import transaction


def _run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_adjust_then_balance_by_email_or_platform_id(store, make_customer):
    with transaction(store) as session:
        customer = make_customer(session, email="grace@example.com", external_id="7001")

    added = _run("loyalty", "adjust", "Grace@Example.com", "120", "--reason", "lost parcel")
    assert added.exit_code == 0, added.output
    assert "shopify:7001" in added.output and "+120 points, balance 120" in added.output

    taken = _run("loyalty", "adjust", "7001", "-20", "--reason", "voucher", "--key", "v-1")
    assert taken.exit_code == 0, taken.output
    repeated = _run("loyalty", "adjust", "7001", "-20", "--reason", "voucher", "--key", "v-1")
    assert repeated.exit_code == 2 and "already applied" in repeated.output

    shown = _run("loyalty", "balance", "shopify:7001")
    assert shown.exit_code == 0, shown.output
    assert "100 points" in shown.output.splitlines()[0]
    assert "voucher" in shown.output and "lost parcel" in shown.output
    with store() as session:
        assert balance(session, customer.id) == 100


def test_unknown_or_ambiguous_customers_are_clear_errors(store, make_customer):
    with transaction(store) as session:
        make_customer(session, source="shopify", external_id="42", email="a@example.com")
        make_customer(session, source="woocommerce", external_id="42", email="b@example.com")

    missing = _run("loyalty", "balance", "nobody@example.com")
    assert missing.exit_code == 2
    assert "no customer has the email or platform id 'nobody@example.com'" in missing.output

    ambiguous = _run("loyalty", "adjust", "42", "10", "--reason", "x")
    assert ambiguous.exit_code == 2
    assert "matches 2 customers (shopify:42, woocommerce:42)" in ambiguous.output

    negative = _run("loyalty", "adjust", "woocommerce:42", "-5", "--reason", "x")
    assert negative.exit_code == 2 and "negative balance" in negative.output
