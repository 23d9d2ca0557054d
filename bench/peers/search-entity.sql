-- DuckDB peer of `sleuth search --entity PATTERN`
-- (bench/run.py --peer "search --entity *zoe*=bench/peers/search-entity.sql").
-- {events}: the case's events Parquet glob; {arg}: the pattern, with sleuth's * and ? wildcards.
-- An entity matches when its id, or its last part after / or :, matches the pattern (case-insensitive).
SET TimeZone = 'UTC';

-- The pattern as an ILIKE pattern (* -> %, ? -> _): exact(), with % and _ literal, for the ids;
-- loose(), where % and _ stay wildcards (a superset: DuckDB's fast ILIKE has no ESCAPE), for the events.
CREATE MACRO exact() AS
    replace(replace(replace(replace(replace({arg}, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%'), '?', '_');
CREATE MACRO loose() AS '%' || replace(replace({arg}, '*', '%'), '?', '_') || '%';
-- An id whose last part (after / or :) matches the pattern contains a match: maybe() keeps the events
-- that can hold a matching id, hit() picks the ids.
CREATE MACRO maybe(s) AS s ILIKE loose();
CREATE MACRO hit(s) AS
    coalesce(s ILIKE exact() ESCAPE '\' OR regexp_extract(s, '[/:]([^/:]+)$', 1) ILIKE exact() ESCAPE '\', false);
CREATE MACRO failed(error_code, action, response) AS
    error_code IS NOT NULL
    OR coalesce(action = 'ConsoleLogin' AND regexp_matches(response, '"ConsoleLogin"\s*:\s*"Failure"'), false);
CREATE MACRO norm_ip(s) AS CASE
    WHEN regexp_full_match(trim(s), '\d{1,3}(\.\d{1,3}){3}') THEN regexp_replace(trim(s), '(^|\.)0+(\d)', '\1\2', 'g')
    WHEN regexp_full_match(trim(s), '[0-9A-Fa-f:.]+') AND contains(s, ':') THEN lower(trim(s)) END;
CREATE MACRO principal_type(principal, actor_type) AS CASE
    WHEN contains(principal, ':role/') THEN 'AwsRole'
    WHEN regexp_matches(principal, ':(user/[^/]|root$)') OR actor_type IN ('IAMUser', 'Root') THEN 'AwsUser'
    WHEN actor_type IN ('FederatedUser', 'SAMLUser', 'WebIdentityUser') THEN 'FederatedUser'
    WHEN starts_with(principal, 'arn:') THEN 'AwsUser' END;

-- The events with a matching id in one of their entity columns (a zero-padded address such as 010.0.0.1
-- is kept for its normalized form), read once.
CREATE TEMP TABLE hits AS
SELECT time, account, failed(error_code, action, response) AS failed, principal, actor_type, session,
       access_key, src_ip, user_agent, resources, CASE WHEN action = 'RunInstances' AND error_code IS NULL
       THEN regexp_extract_all(response, '"instanceId"\s*:\s*"(i-(?:[0-9a-f]{17}|[0-9a-f]{8}))"', 1) END AS launched
FROM read_parquet({events})
WHERE maybe(principal) OR maybe(session) OR maybe(access_key) OR maybe(user_agent) OR maybe(account)
   OR maybe(src_ip) OR regexp_matches(src_ip, '(^|\.)0\d') OR list_bool_or(list_transform(resources, lambda r: maybe(r)));

-- Every entity an event involves: its caller (principal, role session, access key, address, user agent,
-- account, the instance of an instance-role session) and what it acted on (users, roles, instances and
-- buckets among its resources, the instances a RunInstances launched). Matching ids only, then counted.
WITH involved AS (
    SELECT principal_type(principal, actor_type) AS type, principal AS id, time, failed, account, NULL AS owner
    FROM hits
    UNION ALL SELECT 'AwsRoleSession', session, time, failed, account, principal FROM hits
    UNION ALL SELECT 'AccessKey', access_key, time, failed, account, principal FROM hits
    UNION ALL SELECT 'IpAddress', norm_ip(src_ip), time, failed, account, NULL FROM hits
    UNION ALL SELECT 'UserAgent', user_agent, time, failed, account, NULL FROM hits
    UNION ALL SELECT 'AwsAccount', account, time, failed, account, NULL FROM hits
    UNION ALL SELECT 'Ec2Instance', nullif(regexp_extract(session, ':(i-(?:[0-9a-f]{17}|[0-9a-f]{8}))$', 1), ''),
                     time, failed, account, NULL FROM hits
    UNION ALL SELECT 'AwsUser', r, time, failed, account, NULL FROM
        (SELECT DISTINCT unnest(resources) AS r, time, failed, account, principal FROM hits)
        WHERE regexp_matches(r, '^arn:aws[\w-]*:iam::\d+:user/.+$') AND r IS DISTINCT FROM principal
    UNION ALL SELECT 'AwsRole', r, time, failed, account, NULL FROM
        (SELECT DISTINCT unnest(resources) AS r, time, failed, account, principal FROM hits)
        WHERE regexp_matches(r, '^arn:aws[\w-]*:iam::\d+:role/.+$') AND r IS DISTINCT FROM principal
    UNION ALL SELECT 'S3Bucket', b, time, failed, account, NULL FROM
        (SELECT DISTINCT regexp_extract(unnest(resources), '^arn:aws[\w-]*:s3:::([^/]+)$', 1) AS b, time, failed,
                account FROM hits) WHERE b <> ''
    UNION ALL SELECT 'Ec2Instance', unnest(launched), time, false, account, NULL FROM hits)
SELECT type AS entity_type, id AS entity_id, count(*) AS events, count(*) FILTER (failed) AS failures,
       min(time) AS first_seen, max(time) AS last_seen, mode(account) AS account, any_value(owner) AS owner
FROM involved WHERE maybe(id) AND hit(id) AND type IS NOT NULL GROUP BY ALL
ORDER BY events DESC, entity_type, entity_id;
