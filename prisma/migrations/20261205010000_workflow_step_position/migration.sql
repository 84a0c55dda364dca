-- A workflow's steps are listed in the order they were submitted. All of them are written by one
-- statement and share their jobs' created_at, and job ids are not ordered within a millisecond,
-- so only a number of their own keeps the order: the step's place in its submitWorkflow, from 1.
-- Steps written before this migration have none and are listed after, by name, as before.
ALTER TABLE workflow_step ADD COLUMN position integer;
