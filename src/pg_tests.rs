// #[pg_test]s: the API called through SQL, inside a real PostgreSQL.
