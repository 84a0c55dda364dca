-- The W3C trace context (a `traceparent` header's value) of the request that added the job, kept
-- while tracing is on so that every attempt's spans join that request's trace, in whichever
-- process and after however many retries or restarts. NULL when tracing is off. A nullable
-- column without a default is a change to the catalog only: no row is rewritten.
ALTER TABLE "job" ADD COLUMN "traceparent" TEXT;
