"""How the local Airflow of ``postpurchase run`` connects to its SQLite metadata database.

Airflow imports these dicts by name in each of its processes (``[database]
sql_alchemy_connect_args`` and its ``_async`` twin, set by ``local_airflow``), so this module
holds nothing else. SQLite takes one writer at a time, and Python's driver gives up waiting
for the lock after 5 s: on a busy machine the scheduler and the triggerer each stopped on
"database is locked" while another component wrote, and ``airflow standalone`` does not start
them again, which left the run waiting for work no one would do. They wait a minute instead.
"""

BUSY_SECONDS = 60

SYNC = {"timeout": BUSY_SECONDS}
# A dict of its own: Airflow adds an argument of the driver's to the one above.
ASYNC = {"timeout": BUSY_SECONDS}
