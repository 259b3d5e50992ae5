-- The extension's catalog, one line per property, with no OIDs: two databases where billing was
-- installed differently (fresh, or an older version then ALTER EXTENSION UPDATE) must print the
-- same lines. ./run test compares them.
WITH ext AS (SELECT oid, extconfig, extcondition FROM pg_extension WHERE extname = 'billing'),
member AS (
    SELECT d.classid, d.objid FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
),
rels AS (SELECT c.oid, c.relname, c.relkind FROM pg_class c WHERE c.relnamespace = 'billing'::regnamespace),
lines AS (
    -- every member object
    SELECT 'member ' || pg_describe_object(classid, objid, 0) AS line FROM member
    -- functions: the whole definition, and who may execute them
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure::text || E'\n' || pg_get_functiondef(p.oid)
      FROM pg_proc p WHERE p.pronamespace = 'billing'::regnamespace AND p.prokind <> 'a'
    UNION ALL
    SELECT 'acl ' || p.oid::regprocedure::text || ' ' || coalesce(p.proacl::text, 'default')
      FROM pg_proc p WHERE p.pronamespace = 'billing'::regnamespace
    -- relations: columns, constraints, indexes, triggers, privileges, view bodies
    UNION ALL
    SELECT format('column %s.%s %s %s default %s', r.relname, a.attname,
                  format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN 'not null' ELSE 'null' END,
                  coalesce(pg_get_expr(ad.adbin, ad.adrelid), '-'))
      FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef ad ON ad.adrelid = r.oid AND ad.adnum = a.attnum
     WHERE r.relkind IN ('r', 'v', 'p')
    UNION ALL
    SELECT format('constraint %s %s %s', r.relname, co.conname, pg_get_constraintdef(co.oid))
      FROM pg_constraint co JOIN rels r ON r.oid = co.conrelid
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN rels r ON r.oid = i.indrelid
    UNION ALL
    SELECT format('trigger %s %s', pg_get_triggerdef(t.oid), t.tgenabled)
      FROM pg_trigger t JOIN rels r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
    UNION ALL
    SELECT format('relacl %s %s', r.relname, coalesce(c.relacl::text, 'default'))
      FROM rels r JOIN pg_class c ON c.oid = r.oid
    UNION ALL
    SELECT format('view %s %s', r.relname, pg_get_viewdef(r.oid)) FROM rels r WHERE r.relkind = 'v'
    UNION ALL
    SELECT format('sequence %s %s %s %s', r.relname, format_type(s.seqtypid, NULL), s.seqincrement, s.seqstart)
      FROM rels r JOIN pg_sequence s ON s.seqrelid = r.oid
    -- comments on anything in the schema (tables, columns, functions)
    UNION ALL
    SELECT format('comment %s %s', pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description)
      FROM pg_description d
     WHERE (d.classoid = 'pg_class'::regclass AND d.objoid IN (SELECT oid FROM rels))
        OR (d.classoid = 'pg_proc'::regclass
            AND d.objoid IN (SELECT oid FROM pg_proc WHERE pronamespace = 'billing'::regnamespace))
    -- what pg_dump keeps
    UNION ALL
    SELECT format('dump %s %s', cfg::regclass, cond)
      FROM ext, unnest(ext.extconfig, ext.extcondition) AS u(cfg, cond)
    -- seeded reference data
    UNION ALL SELECT 'currency ' || t::text FROM billing.currencies t
    UNION ALL SELECT 'payment_method ' || t::text FROM billing.payment_methods t
    UNION ALL SELECT 'channel ' || t::text FROM billing.channels t
    UNION ALL SELECT 'dunning_stage ' || t::text FROM billing.dunning_stages t
    UNION ALL SELECT 'dunning_policy ' || t::text FROM billing.dunning_policy t
    UNION ALL SELECT 'dunning_fee ' || t::text FROM billing.dunning_fees t
    UNION ALL SELECT 'campaign_transition ' || t::text FROM billing.campaign_transitions t
)
SELECT line FROM lines ORDER BY line;
