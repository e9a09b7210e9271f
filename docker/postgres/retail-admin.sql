-- The platform's admin login in docker compose: owns the pipeline database and creates the platform's
-- roles and Airflow's database, but is not a superuser (the image's `postgres` superuser is used only
-- here, at the data volume's first start). psql variables: admin_user, admin_password, db.
create role :"admin_user" with login createrole createdb password :'admin_password';
-- PostgreSQL 16 grants a role's creator ADMIN on it but not membership; migrations run
-- `alter default privileges for role <writer>`, which needs SET on the writer role.
alter role :"admin_user" set createrole_self_grant = 'set, inherit';
alter database :"db" owner to :"admin_user";
