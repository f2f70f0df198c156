-- Which database this is, whatever it is called or however it is reached: a restore in place
-- compares the target's identity with Opsdeck's own and refuses to overwrite the database
-- Opsdeck runs on. One row, made once; a copy of the database (a restore into a new one)
-- carries it too, so restoring over such a copy in place is refused as well.
CREATE TABLE opsdeck_identity (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id uuid NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO opsdeck_identity DEFAULT VALUES;
