-- Included by every regress file with \i (relative to the repository root, where ./run runs):
-- a fresh extension, so ids start at 1, and err(stmt), which runs one statement and returns its
-- SQLSTATE and message, or 'ok'.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS billing CASCADE;
CREATE EXTENSION billing;
RESET client_min_messages;
CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;
