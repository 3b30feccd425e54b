-- Least-privilege admin Stint connects with (not a superuser), and a group role that
-- generated users join. See docs/targets.md for what each grant is for.
CREATE ROLE stint_admin WITH LOGIN CREATEROLE PASSWORD 'change-me';
GRANT pg_signal_backend TO stint_admin;
GRANT CONNECT ON DATABASE app TO stint_admin;
CREATE ROLE app_readonly NOLOGIN;
GRANT USAGE ON SCHEMA public TO app_readonly;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO app_readonly;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO app_readonly;
GRANT app_readonly TO stint_admin WITH ADMIN OPTION;
