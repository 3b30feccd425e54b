-- Least-privilege admin Stint connects with. See docs/targets.md.
CREATE USER 'stint_admin'@'%' IDENTIFIED BY 'change-me';
GRANT CREATE USER, PROCESS, CONNECTION ADMIN ON *.* TO 'stint_admin'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON app.* TO 'stint_admin'@'%' WITH GRANT OPTION;
