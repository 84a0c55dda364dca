-- Job kinds: any kind's input and result as JSON, in place of add's numeric columns. Every job is
-- carried over: add's numbers become strings inside the JSON, written as the service writes them
-- (trim_scale drops the trailing zeros a numeric keeps; parseDecimal never wrote any), so a
-- retried submission still finds its job by comparing inputs. The UPDATE rewrites every row in
-- this one transaction: on a large table, run it at a quiet time.
ALTER TABLE "job" ADD COLUMN "input" JSONB,
ADD COLUMN "result_json" JSONB,
ADD COLUMN "timeout_seconds" INTEGER;

UPDATE "job" SET
  "input" = jsonb_build_object('num1', trim_scale("num1")::text, 'num2', trim_scale("num2")::text),
  "result_json" = to_jsonb(trim_scale("result")::text);

ALTER TABLE "job" DROP COLUMN "num1",
DROP COLUMN "num2",
DROP COLUMN "result",
ALTER COLUMN "input" SET NOT NULL,
ALTER COLUMN "kind" DROP DEFAULT;

ALTER TABLE "job" RENAME COLUMN "result_json" TO "result";
