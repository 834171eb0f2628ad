-- The engine's own database beside Airflow's metadata database (docker-compose only).
CREATE USER postpurchase WITH PASSWORD 'postpurchase';
CREATE DATABASE postpurchase OWNER postpurchase;
