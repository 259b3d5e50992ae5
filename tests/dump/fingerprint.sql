-- One line per billing table: its name, row count and a hash of its rows in key order.
SELECT format('%s %s %s', c.relname,
              (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM billing.%I', c.relname), false, true, '')))[1]::text,
              md5((xpath('/row/h/text()', query_to_xml(
                  format('SELECT coalesce(string_agg(t::text, %L ORDER BY t::text), %L) AS h FROM billing.%I t', ';', '', c.relname),
                  false, true, '')))[1]::text))
  FROM pg_class c
 WHERE c.relnamespace = 'billing'::regnamespace AND c.relkind = 'r'
 ORDER BY c.relname;
