-- The bundled OASIS example: the Riverside bike-lane debate as CAMEL-AI OASIS
-- records a Twitter run in its SQLite database (integer time steps in
-- created_at; trace.info holds ids, the text is in post/comment/user).
-- `murmur demo` builds .murmur/examples/town_hall_oasis/twitter_simulation.db
-- from this file and publishes it; `sqlite3 x.db < town_hall_oasis.sql` does too.
CREATE TABLE user (user_id INTEGER PRIMARY KEY AUTOINCREMENT, agent_id INTEGER, user_name TEXT, name TEXT, bio TEXT,
                   created_at DATETIME, num_followings INTEGER DEFAULT 0, num_followers INTEGER DEFAULT 0);
CREATE TABLE post (post_id INTEGER PRIMARY KEY AUTOINCREMENT, user_id INTEGER, original_post_id INTEGER,
                   content TEXT DEFAULT '', quote_content TEXT, created_at DATETIME, num_likes INTEGER DEFAULT 0,
                   num_dislikes INTEGER DEFAULT 0, num_shares INTEGER DEFAULT 0, num_reports INTEGER DEFAULT 0);
CREATE TABLE comment (comment_id INTEGER PRIMARY KEY AUTOINCREMENT, post_id INTEGER, user_id INTEGER, content TEXT,
                      created_at DATETIME, num_likes INTEGER DEFAULT 0, num_dislikes INTEGER DEFAULT 0);
CREATE TABLE follow (follow_id INTEGER PRIMARY KEY AUTOINCREMENT, follower_id INTEGER, followee_id INTEGER,
                     created_at DATETIME);
CREATE TABLE "like" (like_id INTEGER PRIMARY KEY AUTOINCREMENT, user_id INTEGER, post_id INTEGER, created_at DATETIME);
CREATE TABLE trace (user_id INTEGER, created_at DATETIME, action TEXT, info TEXT,
                    PRIMARY KEY(user_id, created_at, action, info));

INSERT INTO user VALUES (0, 0, 'mara_k', 'Mara Kovac', 'Bike courier and Riverside resident', 0, 1, 1);
INSERT INTO user VALUES (1, 1, 'tom_b', 'Tom Brandt', 'Owns the bakery on Riverside Avenue', 0, 0, 1);
INSERT INTO user VALUES (2, 2, 'riverside_news', 'Riverside News', 'Local news outlet covering city hall', 0, 0, 1);
INSERT INTO user VALUES (3, 3, 'dr_osei', 'Dr. Ama Osei', 'Transport researcher at the university', 0, 1, 0);
INSERT INTO user VALUES (4, 4, 'lea_parent', 'Lea Hoffmann', 'Parent of two, walks to school daily', 0, 0, 0);

INSERT INTO post VALUES (1, 2, NULL, 'City hall publishes the Riverside bike-lane plan: 3 km of protected lanes, 200 parking spaces removed.', NULL, 0, 2, 0, 2, 0);
INSERT INTO post VALUES (2, 1, NULL, 'Removing 200 parking spaces will kill the shops on Riverside. I oppose this plan.', NULL, 0, 0, 0, 0, 0);
INSERT INTO post VALUES (3, 0, NULL, 'Protected lanes on Riverside would make my daily ride so much safer. I support the plan!', NULL, 1, 1, 0, 0, 0);
INSERT INTO post VALUES (4, 3, 1, 'City hall publishes the Riverside bike-lane plan: 3 km of protected lanes, 200 parking spaces removed.', 'Studies from other cities show shops gain customers after protected lanes open.', 1, 1, 0, 0, 0);
INSERT INTO post VALUES (5, 4, 1, '', NULL, 2, 0, 0, 0, 0);
INSERT INTO post VALUES (6, 1, NULL, 'Eight months of construction on Riverside is a disaster for deliveries.', NULL, 3, 0, 0, 0, 0);

INSERT INTO comment VALUES (1, 2, 4, 'Our kids could finally bike to school. Worth a few parking spaces.', 2, 0, 0);
INSERT INTO comment VALUES (2, 3, 1, 'Safer for you, empty tills for us.', 2, 0, 0);

INSERT INTO follow VALUES (1, 3, 0, 1);
INSERT INTO "like" VALUES (1, 0, 4, 2);
INSERT INTO "like" VALUES (2, 4, 3, 2);
INSERT INTO "like" VALUES (3, 3, 1, 3);

INSERT INTO trace VALUES (0, 0, 'sign_up', '{"name": "Mara Kovac", "user_name": "mara_k", "bio": "Bike courier and Riverside resident"}');
INSERT INTO trace VALUES (1, 0, 'sign_up', '{"name": "Tom Brandt", "user_name": "tom_b", "bio": "Owns the bakery on Riverside Avenue"}');
INSERT INTO trace VALUES (2, 0, 'sign_up', '{"name": "Riverside News", "user_name": "riverside_news", "bio": "Local news outlet covering city hall"}');
INSERT INTO trace VALUES (3, 0, 'sign_up', '{"name": "Dr. Ama Osei", "user_name": "dr_osei", "bio": "Transport researcher at the university"}');
INSERT INTO trace VALUES (4, 0, 'sign_up', '{"name": "Lea Hoffmann", "user_name": "lea_parent", "bio": "Parent of two, walks to school daily"}');
INSERT INTO trace VALUES (2, 0, 'create_post', '{"content": "City hall publishes the Riverside bike-lane plan: 3 km of protected lanes, 200 parking spaces removed.", "post_id": 1}');
INSERT INTO trace VALUES (1, 0, 'create_post', '{"content": "Removing 200 parking spaces will kill the shops on Riverside. I oppose this plan.", "post_id": 2}');
INSERT INTO trace VALUES (0, 1, 'refresh', '{"posts": [{"post_id": 1, "user_id": 2, "content": "City hall publishes the Riverside bike-lane plan: 3 km of protected lanes, 200 parking spaces removed.", "created_at": "0", "num_likes": 0, "num_dislikes": 0, "num_shares": 0, "comments": []}, {"post_id": 2, "user_id": 1, "content": "Removing 200 parking spaces will kill the shops on Riverside. I oppose this plan.", "created_at": "0", "num_likes": 0, "num_dislikes": 0, "num_shares": 0, "comments": []}]}');
INSERT INTO trace VALUES (0, 1, 'create_post', '{"content": "Protected lanes on Riverside would make my daily ride so much safer. I support the plan!", "post_id": 3}');
INSERT INTO trace VALUES (3, 1, 'quote_post', '{"quoted_id": 1, "new_post_id": 4}');
INSERT INTO trace VALUES (3, 1, 'follow', '{"follow_id": 1}');
INSERT INTO trace VALUES (4, 1, 'do_nothing', '{}');
INSERT INTO trace VALUES (4, 2, 'repost', '{"reposted_id": 1, "new_post_id": 5}');
INSERT INTO trace VALUES (4, 2, 'create_comment', '{"content": "Our kids could finally bike to school. Worth a few parking spaces.", "comment_id": 1}');
INSERT INTO trace VALUES (1, 2, 'create_comment', '{"content": "Safer for you, empty tills for us.", "comment_id": 2}');
INSERT INTO trace VALUES (0, 2, 'like_post', '{"post_id": 4, "like_id": 1}');
INSERT INTO trace VALUES (4, 2, 'like_post', '{"post_id": 3, "like_id": 2}');
INSERT INTO trace VALUES (1, 3, 'create_post', '{"content": "Eight months of construction on Riverside is a disaster for deliveries.", "post_id": 6}');
INSERT INTO trace VALUES (3, 3, 'like_post', '{"post_id": 1, "like_id": 3}');
INSERT INTO trace VALUES (2, 3, 'search_posts', '{"query": "bike lane survey"}');
