# The image every Airflow component and the standalone webhook service run from.
FROM apache/airflow:3.3.2-python3.11

USER root
COPY --chown=airflow:root . /opt/postpurchase
USER airflow

# Same pinned set as developers and CI: constraints.txt resolves every dependency.
RUN pip install --no-cache-dir -c /opt/postpurchase/constraints.txt /opt/postpurchase
# Made here, owned by airflow, so the named volumes mounted on them start writable.
RUN mkdir -p /opt/postpurchase/var/outbox /opt/postpurchase/var/opt-out-spool

ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/postpurchase/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/postpurchase/plugins \
    POSTPURCHASE_TEMPLATES_DIR=/opt/postpurchase/templates \
    POSTPURCHASE_CAMPAIGNS_FILE=/opt/postpurchase/config/campaigns.yaml \
    POSTPURCHASE_LOYALTY_CONFIG=/opt/postpurchase/config/loyalty.yaml \
    POSTPURCHASE_VAR_DIR=/opt/postpurchase/var
WORKDIR /opt/postpurchase
