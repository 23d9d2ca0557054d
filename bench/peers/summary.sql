-- DuckDB peer of `sleuth summary` (bench/run.py --peer "summary=bench/peers/summary.sql").
-- {events}: the case's events Parquet glob. Scope: the last 24 h of the data; baseline: the 45 days before.
SET TimeZone = 'UTC';

CREATE MACRO failed(error_code, action, response) AS
    error_code IS NOT NULL
    OR coalesce(action = 'ConsoleLogin' AND regexp_matches(response, '"ConsoleLogin"\s*:\s*"Failure"'), false);
CREATE MACRO norm_ip(s) AS CASE
    WHEN regexp_full_match(trim(s), '\d{1,3}(\.\d{1,3}){3}') THEN regexp_replace(trim(s), '(^|\.)0+(\d)', '\1\2', 'g')
    WHEN regexp_full_match(trim(s), '[0-9A-Fa-f:.]+') AND contains(s, ':') THEN lower(trim(s)) END;
-- sleuth's principal_type(): the entity type of a principal ARN.
CREATE MACRO principal_type(principal, actor_type) AS CASE
    WHEN contains(principal, ':role/') THEN 'AwsRole'
    WHEN regexp_matches(principal, ':(user/[^/]|root$)') OR actor_type IN ('IAMUser', 'Root') THEN 'AwsUser'
    WHEN actor_type IN ('FederatedUser', 'SAMLUser', 'WebIdentityUser') THEN 'FederatedUser'
    WHEN starts_with(principal, 'arn:') THEN 'AwsUser' END;

CREATE TEMP TABLE win AS
SELECT date_trunc('second', max(time)) + INTERVAL 1 SECOND AS scope_end,
       date_trunc('second', max(time)) + INTERVAL 1 SECOND - INTERVAL 24 HOUR AS scope_start,
       date_trunc('second', max(time)) + INTERVAL 1 SECOND - INTERVAL 24 HOUR - INTERVAL 45 DAY AS baseline_start
FROM read_parquet({events});

-- The scope's events, read once: only the columns the summary needs.
CREATE TEMP TABLE scoped AS
SELECT time, floor(epoch(time - scope_start) / 3600)::INT AS hour, failed(error_code, action, response) AS failed,
       principal_type(principal, actor_type) AS principal_type, principal, session, src_ip,
       nullif(regexp_extract(session, ':(i-(?:[0-9a-f]{17}|[0-9a-f]{8}))$', 1), '') AS instance
FROM read_parquet({events}), win WHERE time >= scope_start AND time < scope_end;

-- Totals of the scope.
SELECT count(*) AS events, count(*) FILTER (failed) AS failures, count(DISTINCT principal) AS principals,
       count(DISTINCT norm_ip(src_ip)) AS addresses
FROM scoped;

-- Calls per principal, role session and instance (the instance whose role session made the call), with
-- successes, failures and calls per hour of the scope (sleuth's sparkline).
CREATE TEMP TABLE actors AS
WITH calls AS (
    SELECT principal_type AS type, principal AS id, hour, failed FROM scoped
    UNION ALL SELECT 'AwsRoleSession', session, hour, failed FROM scoped
    UNION ALL SELECT 'Ec2Instance', instance, hour, failed FROM scoped)
SELECT type, id, count(*) AS calls, count(*) FILTER (NOT failed) AS success, count(*) FILTER (failed) AS failure,
       histogram(hour) AS timeline
FROM calls WHERE id IS NOT NULL AND type IS NOT NULL GROUP BY type, id;

SELECT * FROM actors ORDER BY calls DESC, id LIMIT 10;
SELECT * FROM actors WHERE failure > 0 ORDER BY failure DESC, id LIMIT 10;

-- Newly observed geolocations: sleuth first groups the baseline and scope calls by address (calls, first
-- seen, principals), then geolocates the addresses. The same scan and grouping here, without the
-- geolocation: the scope's addresses never seen in the baseline.
CREATE TEMP TABLE per_ip AS
SELECT norm_ip(src_ip) AS ip, in_scope, sum(calls) AS calls, min(first_seen) AS first_seen,
       list_distinct(flatten(list(principals))) AS principals
FROM (SELECT src_ip, time >= scope_start AS in_scope, count(*) AS calls, min(time) AS first_seen,
             list(DISTINCT principal) AS principals
      FROM read_parquet({events}), win
      WHERE time >= baseline_start AND time < scope_end AND src_ip IS NOT NULL
      GROUP BY ALL)
WHERE norm_ip(src_ip) IS NOT NULL GROUP BY ALL;
SELECT * FROM per_ip WHERE in_scope AND ip NOT IN (SELECT ip FROM per_ip WHERE NOT in_scope) ORDER BY first_seen, ip;
