"""Word lists and sentence templates from which the demo item bank is written (synthetic English, demo only)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    """An academic topic: facts that reading passages, lectures and questions are written from.

    Every fact is phrased so that it reads correctly in the templates below; the question distractors are the
    same fact of other topics, so each fact must be distinct across topics.
    """

    name: str
    title: str
    field: str
    feature: str
    cause: str
    effect: str
    method: str
    place: str
    benefit: str


TOPICS: tuple[Topic, ...] = (
    Topic(
        "coral reefs",
        "How Coral Reefs Grow",
        "marine biology",
        "coral reefs are built by tiny animals called polyps that produce hard skeletons of limestone",
        "rising ocean temperatures",
        "the loss of the algae that give corals their food and color",
        "long-term underwater surveys",
        "the western Pacific Ocean",
        "reefs shelter about a quarter of all known marine species",
    ),
    Topic(
        "desert plants",
        "Survival Strategies of Desert Plants",
        "botany",
        "many desert plants store water in thick stems and open their pores only at night",
        "long periods without rain",
        "the growth of roots that reach far below the surface",
        "measurements of water loss from individual leaves",
        "the Sonoran Desert",
        "these plants hold loose soil in place and protect it from wind",
    ),
    Topic(
        "the printing press",
        "The Printing Press and the Spread of Ideas",
        "history",
        "the printing press allowed workers to reproduce a page hundreds of times in a single day",
        "the falling cost of paper",
        "a rapid increase in the number of people who could read",
        "the study of surviving book-sellers' records",
        "fifteenth-century Germany",
        "printed books made it easier for scholars to compare and correct one another's work",
    ),
    Topic(
        "urban heat islands",
        "Why Cities Are Warmer",
        "environmental science",
        "city centers are often several degrees warmer than the countryside around them",
        "dark roofs and paved surfaces",
        "higher demand for electricity on summer evenings",
        "temperature sensors mounted on city buses",
        "several large cities in East Asia",
        "cooler streets reduce health risks for older residents",
    ),
    Topic(
        "bird migration",
        "How Migrating Birds Find Their Way",
        "zoology",
        "many birds travel thousands of kilometers each year between the same summer and winter homes",
        "the shortening of days in autumn",
        "a sudden increase in the amount of food the birds eat",
        "small tracking devices attached to individual birds",
        "the coasts of northern Europe",
        "migrating birds carry seeds between distant regions",
    ),
    Topic(
        "volcanic soils",
        "The Surprising Richness of Volcanic Soils",
        "geology",
        "ash from past eruptions breaks down into soil that is unusually rich in minerals",
        "the slow weathering of volcanic rock",
        "the release of nutrients that crops can easily absorb",
        "chemical analysis of soil samples taken at different depths",
        "the islands of Indonesia",
        "farmers can grow several harvests a year on the same land",
    ),
    Topic(
        "honeybee communication",
        "The Dance Language of Honeybees",
        "animal behavior",
        "honeybees tell one another where food is by performing a short dance inside the hive",
        "the discovery of a rich patch of flowers",
        "more workers leaving the hive in a single direction",
        "video recordings of bees inside glass-walled hives",
        "university research stations in Austria",
        "bee colonies can collect food from a very wide area",
    ),
    Topic(
        "ancient trade routes",
        "Trade Across the Ancient Deserts",
        "archaeology",
        "merchants crossed long stretches of desert by moving from one oasis to the next",
        "the use of camels as pack animals",
        "the growth of market towns along the main routes",
        "the excavation of abandoned rest stations",
        "the Arabian Peninsula",
        "trade spread new crops, tools and languages between distant peoples",
    ),
    Topic(
        "sleep and memory",
        "What Happens to Memories During Sleep",
        "psychology",
        "the brain replays recent experiences during the deepest stages of sleep",
        "a night without sleep",
        "poorer recall of information learned the previous day",
        "laboratory studies in which volunteers learn word lists before sleeping",
        "sleep clinics attached to university hospitals",
        "good sleep helps students keep what they learn",
    ),
    Topic(
        "glaciers",
        "How Glaciers Shape the Land",
        "earth science",
        "glaciers move slowly downhill and carve wide valleys as they go",
        "warmer summers in mountain regions",
        "lakes that form where the ice has melted back",
        "comparisons of aerial photographs taken decades apart",
        "the Alps of central Europe",
        "glaciers store fresh water that rivers depend on in dry months",
    ),
    Topic(
        "early cinema",
        "The First Years of Cinema",
        "film studies",
        "the earliest films were less than a minute long and showed scenes from everyday life",
        "the invention of lightweight cameras",
        "films being shot outdoors rather than in studios",
        "the restoration of damaged film reels found in private collections",
        "Paris and London",
        "early films preserve a record of how ordinary people lived and dressed",
    ),
    Topic(
        "rainforest canopies",
        "Life High in the Rainforest Canopy",
        "ecology",
        "most of the animals in a rainforest live in the canopy far above the ground",
        "the opening of gaps when old trees fall",
        "a burst of growth among young trees competing for light",
        "rope walkways built between the tops of tall trees",
        "the Amazon basin",
        "the canopy absorbs large amounts of carbon from the air",
    ),
    Topic(
        "the domestication of wheat",
        "From Wild Grass to Wheat",
        "agricultural history",
        "early farmers chose seeds from plants whose grains stayed on the stalk at harvest",
        "the repeated planting of selected seeds",
        "grains that were larger and easier to collect",
        "the comparison of ancient seeds with the seeds of wild grasses",
        "the hills of southwest Asia",
        "a reliable grain supply allowed people to live in permanent villages",
    ),
    Topic(
        "sea otters and kelp forests",
        "Sea Otters as Guardians of the Kelp",
        "marine ecology",
        "sea otters eat large numbers of sea urchins, which feed on kelp",
        "the return of otters to a stretch of coast",
        "the regrowth of underwater kelp forests",
        "counts of urchins and kelp plants made by divers",
        "the Pacific coast of North America",
        "kelp forests provide food and shelter for many kinds of fish",
    ),
    Topic(
        "the invention of the telegraph",
        "The Telegraph and the Speed of News",
        "technology studies",
        "the telegraph sent coded electrical signals along wires strung between distant towns",
        "the building of long-distance railway lines",
        "news reaching newspapers within hours instead of weeks",
        "the reading of letters and diaries written by telegraph operators",
        "the eastern United States",
        "businesses could respond quickly to prices in other cities",
    ),
    Topic(
        "language learning in children",
        "How Young Children Learn to Speak",
        "linguistics",
        "young children learn the sounds of their first language long before they speak",
        "regular conversation with adults",
        "a larger vocabulary by the age of three",
        "recordings of everyday conversations in family homes",
        "day-care centers in several countries",
        "early language skills support later success in reading",
    ),
    Topic(
        "solar energy",
        "Turning Sunlight into Electricity",
        "engineering",
        "solar panels turn sunlight directly into electricity without any moving parts",
        "the falling price of solar cells",
        "a rapid rise in the number of homes with panels on their roofs",
        "records of electricity output collected over many years",
        "sunny regions of southern Spain",
        "solar power produces no smoke while it runs",
    ),
    Topic(
        "medieval cathedrals",
        "Building the Great Cathedrals",
        "architecture",
        "medieval builders used stone arches and outside supports to raise very tall walls",
        "the wealth of growing trading towns",
        "larger windows that filled the buildings with light",
        "the study of marks left by masons on the stones",
        "northern France",
        "the cathedrals trained generations of skilled craftsmen",
    ),
)

# Sentences that fit any academic topic; `{field}` and `{name}` are filled from the topic.
ACADEMIC_FILLERS: tuple[str, ...] = (
    "The subject has attracted attention from specialists in {field} for more than a century.",
    "Early observers described the pattern long before anyone could measure it with precision.",
    "Later studies confirmed many of these observations with more accurate instruments.",
    "Some researchers, however, question how widely these findings apply.",
    "The evidence is not always easy to interpret, because many factors act at the same time.",
    "For students of {field}, the case offers a clear example of how small changes can have large effects.",
    "As a result, the topic now appears in most introductory courses in {field}.",
    "Not every scholar agrees on the details, and the debate continues in scientific journals.",
    "Much of the early work was done by small teams with very limited budgets.",
    "Today, new methods allow researchers to collect far more data than was possible in the past.",
    "These results have changed the way many people think about {name}.",
    "Even so, several important questions remain unanswered.",
    "One difficulty is that conditions in the field rarely match conditions in the laboratory.",
    "Comparisons across regions have helped researchers separate general rules from local exceptions.",
    "The findings also have practical consequences for planners and policy makers.",
    "In recent years, interest in {name} has grown well beyond the universities.",
    "A number of museums and public programs now present this research to general audiences.",
    "Researchers expect that the next decade will bring a much clearer picture.",
)

# Lecture-style sentences for academic talks.
LECTURE_OPENERS: tuple[str, ...] = (
    "Okay, everyone, let's get started. Today we're going to talk about {name}.",
    "Good morning. In today's class I want to look at {name}, a topic that comes up a lot in {field}.",
    "All right, last time we finished the unit on methods, so today let's turn to {name}.",
)
LECTURE_FILLERS: tuple[str, ...] = (
    "Now, this is a point that students often miss, so let me say it again.",
    "You'll find a diagram of this in chapter four of your textbook.",
    "I want you to keep this in mind for next week's discussion.",
    "And this is where things get interesting.",
    "Some of you may have read about this in the news recently.",
    "Let me give you a concrete example so this doesn't stay too abstract.",
    "Researchers in {field} still argue about how far this explanation goes.",
)
LECTURE_CLOSERS: tuple[str, ...] = (
    "So, for Thursday, please read the article I posted and think about how it connects to today's ideas.",
    "Okay, we're almost out of time. Next class we'll look at the evidence in more detail.",
    "That's all for today. Bring your questions to the discussion section on Friday.",
)

FIRST_NAMES: tuple[str, ...] = (
    "Maya", "Daniel", "Priya", "Lucas", "Sofia", "Kenji", "Amara", "Tom", "Elena", "Omar", "Grace", "Mateo",
    "Hana", "Jonas", "Leila", "Samuel", "Chloe", "Ravi", "Nadia", "Ethan", "Ines", "Felix", "Zara", "Victor",
)  # fmt: skip
LAST_NAMES: tuple[str, ...] = (
    "Lee", "Garcia", "Okafor", "Novak", "Tanaka", "Brennan", "Silva", "Haddad", "Kowalski", "Reyes", "Patel",
    "Jensen", "Moreau", "Schmidt", "Adeyemi", "Larsen",
)  # fmt: skip
DAYS: tuple[str, ...] = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TIMES: tuple[str, ...] = (
    "8:00 a.m.", "9:30 a.m.", "10:00 a.m.", "11:15 a.m.", "12:30 p.m.", "1:00 p.m.", "2:45 p.m.", "4:00 p.m.",
    "5:30 p.m.", "7:00 p.m.",
)  # fmt: skip
# Opening times and closing times, for sentences where any time of day would not make sense.
EARLY_TIMES: tuple[str, ...] = ("6:30 a.m.", "7:00 a.m.", "7:30 a.m.", "8:00 a.m.", "8:30 a.m.", "9:00 a.m.")
LATE_TIMES: tuple[str, ...] = ("5:00 p.m.", "6:30 p.m.", "8:00 p.m.", "9:00 p.m.", "10:00 p.m.", "11:30 p.m.")
PRICES: tuple[str, ...] = ("$3.50", "$4.25", "$5.00", "$6.75", "$7.50", "$8.95", "$9.20", "$11.00", "$12.50")

# Daily-life texts. Each kind has a title pattern, a text pattern, and questions that ask for one slot; the
# distractors come from the same slot's word list.
DAILY_SLOTS: dict[str, tuple[str, ...]] = {
    "facility": ("swimming pool", "main library", "student gym", "computer lab", "campus bookstore", "art studio"),
    "reason": (
        "repairs to the heating system",
        "the installation of new flooring",
        "a safety inspection",
        "painting work in the main hall",
        "the replacement of old windows",
        "a staff training day",
    ),
    "alternative": (
        "members may use the facility in the west building",
        "a limited service will be offered online",
        "staff will answer questions at the front desk of the student center",
        "items can be returned at the drop box by the main entrance",
        "evening sessions will move to the community hall",
    ),
    "contact": (
        "the front desk",
        "the facilities office",
        "the student services team",
        "the building manager",
        "the events coordinator",
    ),
    "event": (
        "a photography workshop",
        "a career fair",
        "a volunteer cleanup day",
        "a cooking class",
        "an open-mic evening",
        "a charity book sale",
    ),
    "place": (
        "Room 204",
        "the main lobby",
        "the garden courtyard",
        "the east auditorium",
        "the second-floor lounge",
    ),
    "bring": (
        "a student ID card",
        "a reusable water bottle",
        "comfortable shoes",
        "a printed copy of your resume",
        "a small donation of canned food",
    ),
    "cafe": ("The Corner Cafe", "Blue Door Bistro", "Campus Kitchen", "Green Leaf Deli", "Harbor Street Diner"),
    "soup": ("tomato soup", "lentil soup", "pumpkin soup", "chicken noodle soup", "minestrone"),
    "dish": (
        "grilled vegetable sandwich",
        "chicken salad",
        "mushroom pasta",
        "bean chili",
        "vegetable curry",
        "fish tacos",
    ),
    "route": ("Route 5", "Route 12", "the Green Line", "the Airport Express", "the Campus Loop"),
    "stop": ("Central Station", "Hill Road", "the Science Park", "Market Square", "the North Gate"),
    "task": (
        "water the plants on the balcony",
        "take the recycling out on Tuesday",
        "feed the cat twice a day",
        "collect the mail from the front door",
        "turn off the heater before leaving",
    ),
}
# (title, text, questions); a question is (question, slot, option pattern for the slot's value).
DAILY_KINDS: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "Notice: {facility} closure",
        "NOTICE\nThe {facility} will be closed on {day} because of {reason}. During the closure, {alternative}. "
        "The {facility} will reopen at {time} on {day2}. We apologize for any inconvenience. Please direct any "
        "questions to {contact}.",
        (
            ("Why will the {facility} be closed?", "reason", "Because of {}"),
            ("On which day will the {facility} be closed?", "day", "{}"),
            ("What does the notice say about the period of the closure?", "alternative", "{}"),
            ("Whom should readers contact with questions?", "contact", "{}"),
        ),
    ),
    (
        "Email: {event}",
        "From: {first} {last}\nTo: All residents\nSubject: Join us for {event}\n\nHi everyone,\nThis {day} at "
        "{time}, we are hosting {event} in {place}. It is free for all residents, but space is limited, so please "
        "sign up at the front desk by {day2}. Don't forget to bring {bring}. Hope to see you there!\n{first}",
        (
            ("What is the main purpose of the email?", "event", "To invite residents to {}"),
            ("Where will the event take place?", "place", "In {}"),
            ("What should participants bring?", "bring", "{}"),
            ("On which day will the event take place?", "day", "{}"),
        ),
    ),
    (
        "Menu: {cafe}",
        "{cafe} - Today's Lunch Specials\nSoup of the day: {soup} ... {price}\nChef's choice: {dish} ... "
        "{price2}\nAll specials are served from 11:30 a.m. until {late} on weekdays. Students with a valid ID "
        "receive ten percent off every order on {day}.",
        (
            ("How much does the {soup} cost?", "price", "{}"),
            ("Until what time are the specials served?", "late", "{}"),
            ("On which day do students receive a discount?", "day", "{}"),
        ),
    ),
    (
        "Schedule: {route} changes",
        "SERVICE UPDATE - {route}\nStarting {day}, the first bus of the day will leave {stop} at {early} instead "
        "of the usual time. Because of road works near the stadium, buses will not stop there until further "
        "notice. Riders should use {stop2} instead. Updated timetables are available from {contact}.",
        (
            ("What time will the first bus leave {stop}?", "early", "{}"),
            ("Which stop should riders use instead?", "stop2", "{}"),
            ("When does the new schedule begin?", "day", "On {}"),
            ("Where can riders get an updated timetable?", "contact", "From {}"),
        ),
    ),
    (
        "Note from {first}",
        "Hi {first2},\nThanks again for looking after the apartment while I'm away. Could you please {task}? The "
        "spare key is with {contact}. I'll be back around {time} on {day}. Call me if anything comes up!\n{first}",
        (
            ("What does {first} ask {first2} to do?", "task", "To {}"),
            ("When will {first} return?", "day", "On {}"),
            ("Who has the spare key?", "contact", "{}"),
        ),
    ),
)

# (staff role, the student's purpose, the staff member's advice, where to go). The purpose follows "I came by
# to" in the dialogue and "To" in the options; other scenarios' values are the distractors.
CONVERSATION_SCENARIOS: tuple[tuple[str, str, str, str], ...] = (
    (
        "librarian",
        "ask about a book that is missing from the shelves",
        "request the book through the interlibrary loan service",
        "the circulation desk on the first floor",
    ),
    (
        "academic advisor",
        "find out how to change majors",
        "meet with the head of the new department",
        "the registrar's office",
    ),
    (
        "study-abroad coordinator",
        "ask why a study-abroad application was returned",
        "fill out the shorter form online",
        "the international office",
    ),
    (
        "housing officer",
        "get help with a conflict with a roommate",
        "move to a single room in another building",
        "the housing office in the student center",
    ),
    (
        "professor",
        "explain why a lab session was missed",
        "join a make-up session next week",
        "the second floor of the science building",
    ),
    (
        "financial aid officer",
        "ask about ways to pay for next semester",
        "apply for an emergency grant",
        "the financial aid office",
    ),
    (
        "academic advisor",
        "find out whether a course can still be dropped",
        "write a short letter explaining the situation",
        "the dean's office",
    ),
    (
        "lab manager",
        "get permission to use special equipment",
        "complete a safety course first",
        "the safety office in the engineering building",
    ),
    (
        "professor",
        "ask for feedback on a draft of a research paper",
        "narrow the topic down to a single question",
        "the writing center in the main library",
    ),
    (
        "career counselor",
        "get advice on applying for a summer internship",
        "update the resume before sending any applications",
        "the career center",
    ),
)
CONVERSATION_QUESTIONS: tuple[tuple[str, str, str], ...] = (
    ("Why does the student go to see the {role}?", "problem", "To {}"),
    ("What does the {role} suggest the student do?", "solution", "{}"),
    ("By when must the student act?", "day", "By {}"),
    ("Where does the {role} tell the student to go?", "place", "To {}"),
)
# One line is drawn from each group, in order; "{Role}" is the staff member's role, capitalized.
CONVERSATION_LINES: tuple[tuple[str, ...], ...] = (
    (
        "Student: Hi, excuse me. Do you have a minute? My name is {student}.",
        "Student: Hello, I'm {student}. Is this a good time to talk?",
    ),
    ("{Role}: Sure, come on in. What can I do for you?", "{Role}: Of course. Have a seat. How can I help?"),
    (
        "Student: Well, I came by to {problem}. I wasn't sure who else to ask.",
        "Student: I'm here to {problem}. A friend told me you might know what to do.",
    ),
    (
        "{Role}: I see. That happens more often than you might think. Let me check something first.",
        "{Role}: Okay, that's a fairly common situation. Give me a second to look at your file.",
    ),
    ("Student: Thanks. I've been worried about it all week.", "Student: Thank you. I really appreciate it."),
    (
        "{Role}: All right. The easiest thing would be to {solution}. It usually doesn't take long.",
        "{Role}: Here's what I'd suggest. You should {solution}. Most students find that works well.",
    ),
    ("Student: That sounds good. Is there a deadline?", "Student: Okay. When do I need to do that by?"),
    (
        "{Role}: Yes, you'll need to do it by {day}. After that, it gets much more complicated.",
        "{Role}: The deadline is {day}, so I wouldn't wait too long.",
    ),
    ("Student: {day}, got it. And where do I go for that?", "Student: Okay, {day}. Where should I go?"),
    (
        "{Role}: Head over to {place}. Tell them I sent you.",
        "{Role}: You'll want to go to {place}. They're open until {late} today.",
    ),
    ("Student: Great, thank you so much for your help.", "Student: Perfect. Thanks again, that really helps."),
)

ANNOUNCEMENT_SPEAKERS: tuple[str, ...] = (
    "a university radio host",
    "a professor at the start of class",
    "a library staff member",
    "a museum guide",
    "a student union officer",
)
ANNOUNCEMENT_SLOTS: dict[str, tuple[str, ...]] = {
    "event": (
        "the guest lecture on climate policy",
        "the spring concert",
        "the midterm review session",
        "the science fair",
        "the film screening",
        "the alumni networking evening",
        "the poetry reading",
    ),
    "change": (
        "has been moved to a larger room",
        "will start one hour later than planned",
        "has been postponed until next week",
        "will now be streamed online as well",
        "will be held outdoors if the weather is good",
    ),
    "reason": (
        "more people signed up than expected",
        "the speaker's flight was delayed",
        "the usual room is being renovated",
        "several students asked for it",
        "the sound equipment needs to be replaced",
    ),
    "action": (
        "register again on the department website",
        "arrive fifteen minutes early",
        "bring their tickets printed on paper",
        "check their email for a new link",
        "pick up a map at the information desk",
    ),
    "place": ("Hall B", "the main auditorium", "the open-air theater", "Room 310", "the student center ballroom"),
}
ANNOUNCEMENT_QUESTIONS: tuple[tuple[str, str, str], ...] = (
    ("What is the announcement mainly about?", "event", "{}"),
    ("What change does the speaker announce?", "change", "The event {}"),
    ("Why was the change made?", "reason", "Because {}"),
    ("What are listeners asked to do?", "action", "{}"),
    ("Where will the event take place?", "place", "In {}"),
)
ANNOUNCEMENT_OPENERS: tuple[str, ...] = (
    "Attention, please. I have a quick announcement about {event}.",
    "Before we begin, I want to tell you about a change to {event}.",
    "Good afternoon, everyone. This is an update about {event}.",
)
ANNOUNCEMENT_BODY: tuple[str, ...] = (
    "As many of you know, it was planned for {time} on {day}.",
    "However, the event {change}.",
    "This is because {reason}.",
    "The event will now take place in {place}.",
    "If you plan to attend, please {action}.",
)
ANNOUNCEMENT_CLOSERS: tuple[str, ...] = (
    "We're sorry for any confusion, and thank you for your patience.",
    "Thanks for listening, and we hope to see many of you there.",
    "If you have questions, please ask at the information desk.",
)

# Listen and Choose a Response: a spoken line with a fitting reply; the replies of other lines are distractors.
RESPONSE_PAIRS: tuple[tuple[str, str], ...] = (
    ("Do you know when the {facility} closes tonight?", "I think it stays open until {late} tonight."),
    ("Have you finished the reading for {day}'s class?", "Not yet, I'm planning to do it tonight."),
    ("Would you like to join our study group?", "Sure, when do you usually meet?"),
    ("Excuse me, is this seat taken?", "No, go ahead and sit down."),
    ("Why weren't you at the meeting this morning?", "My bus was late, so I missed it."),
    ("Could you help me carry these boxes to {place}?", "Of course, just give me a second."),
    ("How did your presentation go?", "Better than I expected, thanks for asking."),
    ("Should we take the bus or walk to {place}?", "Let's walk, it's such a nice day."),
    ("Where can I print my assignment?", "There are printers in {place}."),
    ("I can't find my student ID anywhere.", "Did you check the pocket of your jacket?"),
    ("Are you going to the career fair on {day}?", "Yes, I want to talk to a few employers."),
    ("The {facility} is really crowded today.", "Maybe we should come back later."),
    ("When is the essay due?", "It's due next {day} before class."),
    ("Do you want to get lunch after class?", "I'd love to, but I have a lab at noon."),
    ("Did you hear that the lecture was cancelled?", "No, thanks for letting me know."),
    ("Can I borrow your notes from yesterday?", "Sure, I'll email them to you tonight."),
    ("How long does it take to get to {place} from here?", "About ten minutes on foot."),
    ("Which book did the professor recommend?", "I wrote the title down, let me check."),
    ("What did you think of the movie?", "Honestly, it was a bit too long for me."),
    ("Is the {facility} open on weekends?", "Only on Saturdays, I believe."),
    ("I'm thinking of taking an extra course next term.", "That sounds like a lot of work."),
    ("Who's in charge of the event on {day}?", "I think {first} is organizing it."),
    ("Could you turn the music down a little?", "Oh, sorry, I didn't realize it was so loud."),
    ("Do you have change for a ten-dollar bill?", "Let me look in my wallet."),
    ("Is {first} coming to the party on {day}?", "She said she would try to make it."),
    ("What time does the {facility} open tomorrow?", "Usually at {early}, but check the website."),
    ("Have you met Professor {last} yet?", "Only once, at the welcome reception."),
    ("Where should we meet before the trip on {day}?", "How about in front of {place}?"),
    ("Did you get the email from Dr. {last}?", "Yes, I read it this morning."),
    ("Can you remind me when the lab report is due?", "It's due at {time} on {day}."),
    ("Would you mind closing the window?", "Not at all, it is getting cold."),
    ("I heard the {facility} is hiring students.", "Really? I should apply."),
    ("Are you taking the bus to {place} later?", "No, {first} is giving me a ride."),
    ("Why is the {facility} so quiet today?", "Most students are away for the holiday."),
    ("Do you think it will rain on {day}?", "The forecast says it will be sunny."),
    ("How was the talk by Professor {last}?", "It was fascinating, you should have come."),
    ("Could we move our meeting to {day}?", "That works for me, same time?"),
    ("Who told you about the job at {place}?", "{first} mentioned it after class."),
    ("Is it true that the exam starts at {time}?", "Yes, so don't be late."),
    ("I left my umbrella in the {facility}.", "They keep a lost-and-found box at the desk."),
)

# Build a Sentence: a context line and the reply whose words the student orders.
BUILD_PAIRS: tuple[tuple[str, str], ...] = (
    ("Where did you leave the {thing}?", "I left it on the {spot}"),
    ("Did you finish the report for Professor {last}?", "I still need to check the last section"),
    ("Why are you going to {place}?", "I need to pick up a {thing} there"),
    ("When does the {event} start?", "It starts right after the {day} lecture"),
    ("How was your trip to {city}?", "The weather in {city} was wonderful"),
    ("What did the advisor tell you?", "She told me to take the course next year"),
    ("Can you come to the meeting on {day}?", "I am afraid I have another class then"),
    ("Who is giving the talk this week?", "A visiting professor from {city} is giving it"),
    ("Have you seen my {thing}?", "I think {first} borrowed it this morning"),
    ("Is the {event} still happening?", "They moved it to {day} because of the rain"),
    ("What time should we meet?", "Let us meet at the library at noon"),
    ("Why was the bus so late today?", "There was an accident on the main road"),
    ("Do you know where {first} lives?", "She lives right next to {place}"),
    ("Which course are you taking next term?", "I want to sign up for the {subject} seminar"),
    ("How long did the {event} last?", "It lasted much longer than we expected"),
    ("What do you want to study after graduating?", "I am hoping to study {subject} abroad"),
    ("Why did you miss the {event}?", "My train from {city} was delayed"),
    ("Where are you going this weekend?", "I am visiting my cousin in {city}"),
    ("Did you like the {subject} lecture?", "It was more interesting than I expected"),
    ("Who won the prize at the {event}?", "A student from the {subject} department won"),
    ("How do you get to {place} from here?", "Take the second street on the left"),
    ("Why is Professor {last} so busy?", "She is finishing a book about {subject}"),
    ("When will you return my {thing}?", "I will bring it back on {day}"),
    ("What did {first} say about the {event}?", "He said it was the best one so far"),
)
BUILD_SLOTS: dict[str, tuple[str, ...]] = {
    "thing": ("laptop", "umbrella", "notebook", "calculator", "jacket", "textbook", "charger"),
    "spot": ("kitchen table", "front desk", "bookshelf", "back seat", "windowsill"),
    "place": ("the bookstore", "the post office", "the lab", "the gym", "the train station"),
    "event": ("workshop", "concert", "seminar", "career fair", "book club"),
    "city": ("Lisbon", "Toronto", "Nairobi", "Osaka", "Melbourne", "Vienna", "Santiago"),
    "subject": ("economics", "chemistry", "history", "psychology", "architecture", "statistics"),
}

# (recipient, greeting, situation, the three things the email must do)
EMAIL_SCENARIOS: tuple[tuple[str, str, str, tuple[str, str, str]], ...] = (
    (
        "the manager of {cafe}",
        "Dear Manager",
        "You had lunch at {cafe} last {day}, and you left your {thing} there.",
        ("describe the lost item", "explain when and where it was left", "ask how to get it back"),
    ),
    (
        "your professor, Dr. {last}",
        "Dear Dr. {last}",
        "You missed Dr. {last}'s class on {day} because you were ill, and an assignment was announced.",
        (
            "explain the reason for the absence",
            "ask about the assignment",
            "suggest a time to meet in office hours",
        ),
    ),
    (
        "the organizer of {event}",
        "Dear Organizer",
        "You signed up for {event}, but you now have a schedule conflict on {day}.",
        ("explain the conflict", "ask about attending on another day", "offer to help in another way"),
    ),
    (
        "your neighbor, {first}",
        "Hi {first}",
        "Your neighbor {first} has been playing loud music late at night, and you have exams next week.",
        ("describe the problem politely", "explain why it matters right now", "propose a solution"),
    ),
    (
        "the housing office",
        "Dear Housing Office",
        "The heating in your room has not worked for three days, and it is getting cold.",
        ("describe the problem", "explain what has already been tried", "ask when it can be repaired"),
    ),
    (
        "your friend {first}",
        "Hi {first}",
        "Your friend {first} is visiting your city next month and asked you for advice.",
        ("recommend a place to visit", "suggest where to stay", "offer to meet during the visit"),
    ),
    (
        "the coach of the university swimming team",
        "Dear Coach",
        "You would like to join the university swimming team, but you have a class during some practices.",
        ("introduce yourself", "explain the schedule problem", "ask whether a flexible arrangement is possible"),
    ),
    (
        "Professor {last}",
        "Dear Professor {last}",
        "You are interested in working as a research assistant in Professor {last}'s laboratory.",
        ("explain your interest in the research", "describe your relevant experience", "ask about next steps"),
    ),
    (
        "the manager of the campus bookstore",
        "Dear Manager",
        "You ordered a textbook from the campus bookstore two weeks ago, but it has not arrived.",
        ("give the details of the order", "explain why you need the book soon", "ask what can be done"),
    ),
    (
        "your classmate {first}",
        "Hi {first}",
        "You and your classmate {first} must give a presentation together next {day}, but you have not met yet.",
        ("suggest a time to meet", "propose how to divide the work", "share one idea for the topic"),
    ),
    (
        "the organizer of {event}",
        "Dear Organizer",
        "You attended {event} last weekend and enjoyed it, but you noticed a problem with the registration.",
        ("say what you enjoyed", "describe the registration problem", "suggest an improvement"),
    ),
    (
        "the editor of the student newspaper",
        "Dear Editor",
        "The student newspaper published an article about the {facility} that contained a mistake.",
        ("identify the mistake", "give the correct information", "suggest how to correct it"),
    ),
)
EMAIL_THINGS: tuple[str, ...] = ("scarf", "phone charger", "notebook", "umbrella", "sunglasses", "water bottle")

DISCUSSION_QUESTIONS: tuple[tuple[str, str, str, str], ...] = (
    (
        "education",
        "Some people think universities should require every student to take a course in public speaking. Others "
        "think students should choose their own courses. Which view do you agree with, and why?",
        "Public speaking is useful in almost every job, so making it required makes sense to me.",
        "Students know their own goals best, and required courses take time away from their main subject.",
    ),
    (
        "urban planning",
        "Cities are debating whether to turn busy streets in the city center into car-free zones for pedestrians. "
        "Would this be a good idea? Explain your position.",
        "Car-free streets are safer and quieter, and local shops often get more customers.",
        "Many people, especially older residents, depend on cars, and banning them could hurt businesses.",
    ),
    (
        "technology",
        "Should schools allow students to use their phones during the school day? Give reasons for your answer.",
        "Phones can be useful learning tools, for example for looking up information quickly.",
        "Phones are a constant distraction, and students focus better without them.",
    ),
    (
        "environmental studies",
        "Which is more effective for protecting the environment: actions by individuals or laws passed by "
        "governments? Explain your view.",
        "Laws can change the behavior of millions of people and large companies at once.",
        "Real change starts with individuals, because laws only pass when enough people care.",
    ),
    (
        "business",
        "Many companies now let employees work from home several days a week. Is this good for companies in the "
        "long run? Why or why not?",
        "Working from home saves time on commuting, so employees are happier and more productive.",
        "Teams that rarely meet in person lose the informal conversations that produce new ideas.",
    ),
    (
        "sociology",
        "Some people say that social media has brought people closer together, while others say it has made "
        "people more isolated. What is your opinion?",
        "Social media lets me keep in touch with friends and family who live far away.",
        "People spend hours online instead of meeting face to face, and that makes them feel lonely.",
    ),
    (
        "health sciences",
        "Should governments put a tax on sugary drinks to improve public health? Explain your answer.",
        "A tax would make people think twice and would raise money for health programs.",
        "People should be free to decide what they drink, and the tax hurts families with low incomes most.",
    ),
    (
        "media studies",
        "Is it better to get news from a few trusted sources or from many different sources? Explain your view.",
        "A few trusted sources save time and are less likely to spread false stories.",
        "Reading many sources shows you different points of view and helps you spot bias.",
    ),
    (
        "economics",
        "Should university education be free for all students? Support your opinion with reasons.",
        "Free education gives everyone the same chance, whatever their family can afford.",
        "Someone has to pay, and free tuition could lower quality because universities get less money.",
    ),
    (
        "psychology",
        "Is it better for students to study alone or in groups? Explain your position.",
        "Studying in a group lets students explain ideas to one another, which helps them understand.",
        "Groups easily get off topic, so studying alone is more efficient.",
    ),
    (
        "history",
        "Should students learn history mainly through famous leaders and events, or through the daily lives of "
        "ordinary people? Explain your view.",
        "Leaders and major events shaped the world, so they give students the clearest picture.",
        "Ordinary people's lives show what the past really felt like, which makes history easier to relate to.",
    ),
    (
        "public policy",
        "Some cities offer free public transportation to all residents. Is this a good use of public money? Why "
        "or why not?",
        "Free transit reduces traffic and pollution and helps people with low incomes reach jobs.",
        "The money would be better spent on making buses and trains faster and more reliable.",
    ),
    (
        "computer science",
        "Should every high school student be required to learn computer programming? Explain your answer.",
        "Programming teaches logical thinking, and almost every future job will involve computers.",
        "Not everyone needs to code; basic digital skills are enough for most people.",
    ),
    (
        "environmental studies",
        "Would banning single-use plastic bags in shops make a real difference to the environment? Explain.",
        "Bans quickly change habits, and many countries have seen far less plastic litter afterwards.",
        "Plastic bags are a tiny part of the problem; industry and shipping matter much more.",
    ),
    (
        "education",
        "Should university students be graded on participation in class discussions? Why or why not?",
        "Grading participation encourages students to prepare and to share their ideas.",
        "Quiet students may understand the material well but feel anxious speaking in front of others.",
    ),
    (
        "business",
        "Is it better for a new company to grow quickly or slowly? Support your opinion.",
        "Growing quickly helps a company win customers before competitors arrive.",
        "Slow growth lets a company learn from mistakes without running out of money.",
    ),
    (
        "sociology",
        "Do you think people are happier today than people were fifty years ago? Explain your view.",
        "Today people have better health care and far more opportunities than in the past.",
        "Modern life is more stressful, and many people feel they have less time for family.",
    ),
    (
        "health sciences",
        "Should schools remove unhealthy snacks from their vending machines? Explain your position.",
        "Schools should model healthy habits, and children eat what is easily available.",
        "Students should learn to make their own choices, and banning snacks will not teach that.",
    ),
    (
        "urban planning",
        "Should cities build more parks or more housing on their remaining empty land? Explain.",
        "Housing is so expensive that building more homes must come first.",
        "Parks improve health and quality of life, and once land is built on it never returns.",
    ),
    (
        "psychology",
        "Is it better to give children many small rewards or a few large ones to encourage good habits?",
        "Small, frequent rewards help children connect good behavior with positive results.",
        "Too many rewards make children expect a prize for everything they do.",
    ),
    (
        "media studies",
        "Should social media companies be responsible for false information posted on their sites? Explain.",
        "The companies profit from the posts, so they should make sure false stories do not spread.",
        "Users are responsible for what they post, and companies cannot check millions of messages.",
    ),
    (
        "economics",
        "Would a four-day work week be good for the economy? Explain your position.",
        "Rested workers are more productive, and they spend more money in their free time.",
        "Many businesses, such as hospitals and shops, cannot simply close for an extra day.",
    ),
    (
        "technology",
        "Will self-driving cars make roads safer? Give reasons for your answer.",
        "Computers do not get tired or distracted, and most accidents are caused by human error.",
        "The technology is not ready for bad weather or unexpected situations on the road.",
    ),
    (
        "art history",
        "Should governments spend public money to support artists and museums? Why or why not?",
        "Art is part of a nation's identity, and many artists could not work without support.",
        "Public money should go to basic needs such as health and education first.",
    ),
    (
        "linguistics",
        "Should young children start learning a second language in primary school? Explain your view.",
        "Young children pick up the sounds of a new language much more easily than adults.",
        "Children should first build strong skills in their own language before adding another.",
    ),
    (
        "agriculture",
        "Is it better to buy food from local farms or from large international suppliers? Explain.",
        "Local food is fresher and supports farmers in the community.",
        "International suppliers offer lower prices and a wider variety of food all year.",
    ),
    (
        "engineering",
        "Should cities invest in high-speed trains between major cities instead of expanding airports?",
        "Trains produce far less pollution and take passengers directly to city centers.",
        "Flying is still faster for long distances, and building new rail lines is very expensive.",
    ),
    (
        "philosophy",
        "Is it ever acceptable to break a rule in order to help someone? Explain your position.",
        "Rules exist to protect people, so helping someone can be more important than following them.",
        "If everyone broke rules when they felt it was right, society would become chaotic.",
    ),
    (
        "education",
        "Should homework be banned in primary schools? Support your opinion.",
        "Young children need time to play and rest after a full day of lessons.",
        "Short homework tasks teach responsibility and help parents see what children are learning.",
    ),
    (
        "environmental studies",
        "Should people be encouraged to eat less meat to protect the environment? Explain.",
        "Raising animals uses huge amounts of land and water, so eating less meat helps.",
        "Diet is a personal choice, and other changes, such as cleaner energy, matter more.",
    ),
)

# Listen and Repeat: short sentences a guide, a staff member or a teacher might say.
REPEAT_TEMPLATES: tuple[str, ...] = (
    "Welcome to the {facility}.",
    "Please sign in at the front desk.",
    "The {facility} opens at {early} on weekdays.",
    "Visitors must wear their badges at all times.",
    "The tour will begin in {place} in five minutes.",
    "Bags can be left in the lockers near the entrance.",
    "Please keep your voices down in the reading room.",
    "The next session starts on {day} afternoon.",
    "You can borrow up to ten books at a time.",
    "Lunch will be served in {place} after the talk.",
    "Remember to return your keys before you leave on {day}.",
    "The computer lab is on the second floor, next to the elevators.",
    "Please turn off your phone before the performance begins.",
    "Our guide today will be {first}, who has worked here for many years.",
    "If you have any questions, raise your hand and someone will help you.",
    "The gift shop closes thirty minutes before the museum.",
    "Photographs are not allowed in this part of the building.",
    "The shuttle to the north campus leaves every twenty minutes.",
    "Tickets for the {day} show are sold out.",
    "Please check the board for changes to the schedule.",
)

# Take an Interview: questions of a researcher interviewing people about a theme.
INTERVIEW_QUESTIONS: tuple[str, ...] = (
    "Tell me about a place in your town that you enjoy visiting, and explain why you like it.",
    "Do you prefer to study in the morning or in the evening? Why?",
    "How has technology changed the way you communicate with your friends?",
    "Describe a skill you would like to learn in the next few years.",
    "What is the best piece of advice you have ever received, and who gave it to you?",
    "Some people like to plan every detail of a trip, while others prefer to be spontaneous. Which do you prefer?",
    "How do you usually relax after a busy day?",
    "Do you think it is important to learn about the history of your own city? Why or why not?",
    "Tell me about a book or film that changed the way you think.",
    "Would you rather live in a big city or a small town? Explain your choice.",
    "What makes a good teacher, in your opinion?",
    "How do you think people will travel to work twenty years from now?",
    "Describe a time when you had to work with a group to solve a problem.",
    "Should young people do volunteer work? Why or why not?",
    "What is one thing your school or university could do to make student life better?",
    "Do you prefer getting news from newspapers, television or the internet? Why?",
    "Tell me about a tradition in your family that is important to you.",
    "Is it better to have a few close friends or many friends? Explain.",
    "How do you decide what to spend your money on?",
    "What kind of job would you like to have in ten years, and why?",
    "Some people say that exercise is the best way to reduce stress. Do you agree?",
    "Describe a change in your community that you have noticed recently.",
    "Do you think students should have part-time jobs while they study? Why?",
    "What is a goal you have set for yourself this year?",
    "How important is it to speak more than one language today?",
    "Tell me about a time you learned something from a mistake.",
    "Should museums be free for everyone? Why or why not?",
    "What do you usually do on weekends, and has that changed over the years?",
    "Would you like to work for a large company or a small one? Explain.",
    "What advice would you give to someone starting university?",
    "How do you prefer to learn new things: by reading, by watching or by doing?",
    "Is it better to save money or to spend it on experiences? Explain your view.",
    "Describe a public space in your city that could be improved, and how.",
    "Do you think online classes can be as effective as classes in person?",
    "What is something you do to protect the environment in your daily life?",
    "Who is someone you admire, and why?",
    "How do you keep in touch with friends who live far away?",
    "Should children be allowed to choose what they study at school?",
    "What is your favorite season, and what do you like to do then?",
    "Tell me about an event that you are looking forward to.",
    "Do you think people today read less than in the past? Why?",
    "What would you change about the way your city handles public transportation?",
    "Describe a meal that is special to you and when you eat it.",
    "Do you prefer working on projects alone or with others? Why?",
    "How has your hometown changed since you were a child?",
    "If you could visit any country, which would you choose and why?",
    "What role should sports play in school life?",
    "Tell me about a hobby you started recently.",
)
INTERVIEW_OPENINGS: tuple[str, ...] = (
    "In my experience,",
    "Personally, I would say that",
    "That's an interesting question. I think",
    "For me,",
)
INTERVIEW_REASONS: tuple[str, ...] = (
    "it gives me time to think about what really matters to me",
    "it helps me stay organized and calm during busy weeks",
    "I have seen how much it helps the people around me",
    "it lets me learn something new almost every day",
    "it connects me with people who share my interests",
)

RUBRIC_LEVELS: tuple[str, ...] = (
    "0: No response, or the response is unrelated to the task.",
    "1: Very limited response; ideas are hard to follow and errors block meaning.",
    "2: Partly addresses the task; ideas are thin and frequent errors obscure meaning.",
    "3: Addresses the task with some development; noticeable errors occasionally obscure meaning.",
    "4: Addresses the task well with clear development; minor errors do not obscure meaning.",
    "5: Fully addresses the task with well-developed, clearly expressed ideas and precise language.",
)
